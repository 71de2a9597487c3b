"""Deploy packages (manifest, signature), the server image, installer steps and runtimes."""
