"""Configuration of the sales service (see `ServiceSettings` for the shared part).

Who reads which deals (`services.sales.dependencies.Visibility`):
`CRM_SALES_VISIBILITY` is `own`, `team` (default) or `all`, and `CRM_SALES_TEAMS` names
the teams as a JSON object of team name to the token subjects in it, e.g.
`CRM_SALES_TEAMS='{"east": ["chen.jing", "li.na", "wang.fang"]}'`.
"""

from typing import Annotated, Literal

from pydantic import Field, StringConstraints, field_validator

from services.runtime.settings import ServiceSettings, port_setting

Subject = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
VisibilityRule = Literal["own", "team", "all"]


class SalesSettings(ServiceSettings):
    http_port: int = port_setting("sales", 8002)
    sales_visibility: VisibilityRule = Field(
        default="team",
        validation_alias="CRM_SALES_VISIBILITY",
        description="Which deals a caller reads: `own` (reps their own deals and figures, "
        "managers their team's), `team` (reps their own deals and their team's figures, "
        "managers their team's deals) or `all` (everyone every deal).",
    )
    sales_teams: dict[Subject, list[Subject]] = Field(
        default_factory=dict,
        validation_alias="CRM_SALES_TEAMS",
        description='The sales teams, JSON: {"team": ["subject", ...], ...}; a subject '
        "may belong to several.",
    )

    @field_validator("sales_teams")
    @classmethod
    def _teams_have_members(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        empty = [team for team, members in value.items() if not members]
        if empty:
            raise ValueError(f"a team needs at least one member: {', '.join(empty)}")
        return value

    def teammates(self, subject: str) -> frozenset[str]:
        """`subject` and everyone sharing a team with them."""
        found = {subject}
        for members in self.sales_teams.values():
            if subject in members:
                found.update(members)
        return frozenset(found)
