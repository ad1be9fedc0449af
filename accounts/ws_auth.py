"""WebSocket authentication middleware shared by every consumer."""

from channels.auth import AuthMiddlewareStack

# Session-cookie authentication; API tokens are added by the accounts issue.
WebSocketAuthMiddleware = AuthMiddlewareStack
