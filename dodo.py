"""`doit lock` for a Mochi project: runs mochi-pybridge's task graph.

The project defaults to the bundled example; choose another with `doit lock project=DIR` or the
MOCHI_PROJECT environment variable. `doit publish` releases it (`doit publish-gates` is the dry run;
`repository=URL` and `from=DIR` as `mochi-py publish --repository` and `--from`).
"""

import os
import sys
from pathlib import Path

from doit import get_var

from tasks.errors import BridgeError
from tasks.graph import detect_context, doit_config, make_tasks
from tasks.publish.plan import PublishOptions
from tasks.publish_graph import publish_tasks

_default = os.environ.get("MOCHI_PROJECT", str(Path(__file__).resolve().parent / "examples" / "hello"))
try:
    _ctx = detect_context(Path(get_var("project", _default)))
except BridgeError as _exc:
    print(f"error: {_exc}", file=sys.stderr)
    sys.exit(2)

globals().update(make_tasks(_ctx))
_from = get_var("from", None)
globals().update(publish_tasks(_ctx, PublishOptions(repository=get_var("repository", None),
                                                    from_dir=str(Path(_from).resolve()) if _from else None)))
DOIT_CONFIG = doit_config(Path(_ctx.root))
