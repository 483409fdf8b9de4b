"""The checks this project runs on its own output, importable by other repositories."""
