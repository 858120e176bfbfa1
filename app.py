"""SeaCat PKI on AWS Chalice: creates the app and registers the blueprints. Nothing else."""

from __future__ import annotations

from chalice import Chalice

from chalicelib.api import audit, gateway_credentials, health, ocsp, openapi, seacat, tenants, tokens
from chalicelib.api.middleware import register

app = Chalice(app_name="seacat-pki")
register(app)
app.register_blueprint(health.bp)
app.register_blueprint(tokens.bp)
app.register_blueprint(tenants.bp)
app.register_blueprint(seacat.bp)
app.register_blueprint(gateway_credentials.bp)
app.register_blueprint(audit.bp)
app.register_blueprint(ocsp.bp)
app.register_blueprint(openapi.bp)
