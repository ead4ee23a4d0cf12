"""The running service: scheduler, web server, status, alerts and WebSub."""
