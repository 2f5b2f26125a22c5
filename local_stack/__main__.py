"""``python -m local_stack`` (``make run``): the whole pipeline on this machine until Ctrl-C."""

from __future__ import annotations

import logging
import os
import sys
import warnings

from local_stack.config import LocalConfig, LocalConfigError
from local_stack.template import TemplateError
from local_stack.web import StackError
from pipeline.config import ConfigError


def main() -> int:
    # Read by moto when it is imported: without it moto's server allows every origin, so a bucket CORS rule
    # that would block the upload page on AWS would pass here. With it the bucket's own rules answer.
    os.environ["MOTO_DISABLE_GLOBAL_CORS"] = "true"
    from local_stack import stack

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%X")
    # boto3 announces where it found credentials and endpoints on every client: noise here.
    logging.getLogger("botocore").setLevel(logging.WARNING)
    # Powertools warns when an invocation (S3's test event, a skipped duplicate) records no metric.
    warnings.filterwarnings("ignore", message="No application metrics to publish", category=UserWarning)
    try:
        config = LocalConfig.from_env(os.environ)
        return stack.run(config, dict(os.environ))
    except (StackError, LocalConfigError, ConfigError, TemplateError) as error:
        print(f"local stack: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
