"""newsmon: a change-tracking news monitor.

The pipeline, one module per stage:
fetch → normalise → stories → developments → rules → alerts (notifiers).
"""

__version__ = "0.1.0"
USER_AGENT = f"newsmon/{__version__} (+https://github.com/newsmon/newsmon)"
