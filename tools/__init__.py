"""The maker's command line, `mpfleet`."""
