"""Errors a command can end with, each mapped to an HTTP status by the HTTP layer."""


class CommandRejected(Exception):
    """Base: the command was refused; `str(error)` tells the caller what to change."""

    status_code = 422


class BadRequest(CommandRejected):
    """A parameter or header holds what no route can use (a cursor this service did not
    issue, a malformed `If-Match` or `Last-Event-ID`)."""

    status_code = 400


class NotFound(CommandRejected):
    status_code = 404


class Conflict(CommandRejected):
    """The command contradicts the current state (e.g. a stale expected version)."""

    status_code = 409


class RuleViolation(CommandRejected):
    """The command breaks a business rule (e.g. removing a contact that is not there)."""

    status_code = 422


class Gone(CommandRejected):
    """What the command would touch is gone for good (e.g. an erased customer's data)."""

    status_code = 410
