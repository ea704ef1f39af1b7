"""cfnsr: a config-driven framework for audio-visual emotion recognition (CFN-SR and its baselines).

Importing the package registers nothing: the config resolvers are registered by each entry point
(``cfnsr.conf_resolvers.register_resolvers``).
"""

__version__ = "0.1.0"
