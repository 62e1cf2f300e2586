"""Compare the offline plans of two revisions and write what changes as markdown.

``python -m offline.diff BASE.json HEAD.json`` reads two plans written by
``python -m offline --json`` (the base branch's and the pull request's) and prints a markdown
report for a pull-request comment: resources added, removed and changed with the properties
that changed, stateful resources that would be replaced or removed, secrets and provider config
that change, the stack outputs that change, and the monthly cost before and after. Everything
here is pure: plans in, text out, and only the standard library, so the comment workflow can run
the default branch's copy of this package on plans made by a pull request's code.

One module a step, each importing only the ones above it:

- ``redact``: secrets out of every value and name a report shows.
- ``text``: names from a plan made safe for markdown, and how much of a list is shown.
- ``read``: plan files read and checked to be offline plans (:class:`PlanError` otherwise).
- ``compare``: resources and values compared, the stateful rule, renames, data warnings.
- ``costs``: the cost table from the plans' ``costs`` output.
- ``config``: secrets set anew and provider config that changes.
- ``plan_diff``: :func:`diff_plans`, the whole :class:`PlanDiff` of two plans.
- ``markdown``: the report, trimmed under GitHub's comment limit.
- ``__main__``: the command line.

What an offline diff can know, and what it cannot: identity is the URN, so a rename without
``aliases`` is a removal and an addition (``compare``); whether a changed input replaces a
resource is the provider's decision, known here only for the types in
:data:`~offline.diff.compare.STATEFUL_TYPES` (``compare``); a secret set anew is seen by the
fingerprint of its ciphertext, never by its value (``config``); and a plan is data from a pull
request's code, escaped and cut before it reaches markdown or refused with one error line
(``text``, ``read``).
"""

from offline.diff.compare import MISSING, STATEFUL_TYPES, Change, DataWarning, ResourceDiff
from offline.diff.config import SecretChange
from offline.diff.costs import CostRow
from offline.diff.markdown import COMMENT_LIMIT, MARKER, render_failure, render_markdown, size
from offline.diff.plan_diff import PlanDiff, diff_plans
from offline.diff.read import PlanError, check_plan, read_plan
from offline.diff.redact import REDACTED, redact, redact_text, secret_key

__all__ = [
    "COMMENT_LIMIT",
    "MARKER",
    "MISSING",
    "REDACTED",
    "STATEFUL_TYPES",
    "Change",
    "CostRow",
    "DataWarning",
    "PlanDiff",
    "PlanError",
    "ResourceDiff",
    "SecretChange",
    "check_plan",
    "diff_plans",
    "read_plan",
    "redact",
    "redact_text",
    "render_failure",
    "render_markdown",
    "secret_key",
    "size",
]
