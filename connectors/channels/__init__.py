"""Channel connectors: one module (or package) per vendor, built by ``engine.channels.registry``."""
