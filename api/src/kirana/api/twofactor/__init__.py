"""Two-factor authentication: TOTP (authenticator apps), SMS codes, recovery codes, step-up."""
