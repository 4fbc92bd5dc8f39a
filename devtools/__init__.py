"""Development tools (local server, signing, local invoke). Never deployed with the function."""
