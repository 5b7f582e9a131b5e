"""Ready-made design domains: benchmark problems and application domains."""
