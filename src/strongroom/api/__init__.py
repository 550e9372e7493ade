"""HTTP API: Turnkey-compatible routes, error rendering, the same app on TCP and Unix sockets."""
