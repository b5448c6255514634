"""The one error a bad config raises, shared by the study's config and the synthetic world's."""


class ConfigError(ValueError):
    """A config key is missing, has a bad value, or contradicts another; the message names it."""
