"""Deployment: the CloudFormation template, Lambda packaging (package.py) and make deploy/destroy (deploy.py)."""
