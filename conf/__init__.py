# Makes conf/ (linked as cfnsr/conf) the package cfnsr.conf, which Hydra reads as pkg://cfnsr.conf.
