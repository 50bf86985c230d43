"""The l7 rule tier, pure: ACL evaluation (acl.py) and HAProxy's request processing
order for a frontend and its backend (engine.py). No sockets here."""
