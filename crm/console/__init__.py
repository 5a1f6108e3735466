"""The staff console: server-rendered pages under /staff/, signed in with a password and a session cookie."""
