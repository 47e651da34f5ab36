"""What the pure core raises about the data it was given.

Core knows no exit codes and no UI: it says what kind of problem it found, and the service
layer's unit of work (``service.errors.translated``) turns each kind into the ``WgfleetError``
a caller prints and exits with. They stay ``ValueError``s, so code that checks a value with
``except ValueError`` keeps working.
"""

from __future__ import annotations


class CoreError(ValueError):
    """Base of every error core raises on purpose; anything else from core is a bug."""


class InvalidInput(CoreError):
    """A value a person or a file gave is not acceptable (a size, a duration, a name...)."""


class NodeAnswerInvalid(CoreError):
    """What a node printed is not what the node protocol promises: the node is not trusted."""


class Exhausted(CoreError):
    """A pool ran out: tunnel addresses, IPv6 networks, key slots."""


class NotReady(CoreError):
    """The fleet is not in the state this needs yet (a node not deployed, a key not made)."""
