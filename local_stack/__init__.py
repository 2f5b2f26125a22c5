"""The whole pipeline on one machine: moto in server mode, the real processor fed by a local SQS poller,
a CloudFront stand-in and the Django app, started together by ``python -m local_stack`` (``make run``)."""
