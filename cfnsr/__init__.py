"""cfnsr: a config-driven framework for audio-visual emotion recognition (CFN-SR and its baselines)."""

__version__ = "0.1.0"


def _register_config_resolvers() -> None:
    """``${cfnsr_len:${data.class_names}}``: conf/data/*.yaml derive ``num_classes`` from ``class_names`` so the
    count is never written twice; ``${cfnsr_csv_labels:<csv>}``: the sorted labels of a folder corpus's CSV. Registered on import of the package, so every entry point and test that composes a
    config can resolve it (OmegaConf resolves lazily, on first access)."""
    from omegaconf import OmegaConf

    if not OmegaConf.has_resolver("cfnsr_len"):
        OmegaConf.register_new_resolver("cfnsr_len", lambda value: len(value))
    if not OmegaConf.has_resolver("cfnsr_csv_labels"):  # conf/data/folder.yaml: class names from the clip CSV
        OmegaConf.register_new_resolver("cfnsr_csv_labels", _csv_labels)


def _csv_labels(csv_path: str) -> list[str]:
    from cfnsr.data.folder_corpus import csv_class_names

    return csv_class_names(csv_path)


_register_config_resolvers()
