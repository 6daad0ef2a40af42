"""HTTP commands of the interaction service: log and correct interactions, work tickets,
record survey answers and feedback, set contact plans.

Commands answer with the aggregate's id and version (also as `ETag`); send
`If-Match: "<version>"` to have a change refused with 409 when someone else was first.
"""

from services.interaction.commands.routes import router

__all__ = ["router"]
