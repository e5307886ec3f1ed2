"""A nameko timer whose interval comes from the service's config (``@timer`` fixes it when
the class is defined)."""

from nameko.timer import Timer


class ConfiguredTimer(Timer):
    """Fires every ``config[setting]`` seconds (``default`` when unset)."""

    def __init__(self, setting, default, **kwargs):
        super().__init__(interval=default, **kwargs)
        self.setting = setting
        self.default = default

    def setup(self):
        self.interval = float(self.container.config.get(self.setting) or self.default)
        super().setup()


configured_timer = ConfiguredTimer.decorator
