"""SeaCat PKI on AWS Chalice: creates the app and registers the blueprints. Nothing else."""

from __future__ import annotations

from chalice import Chalice

from chalicelib.api import (
    audit,
    console,
    est,
    est_credentials,
    gateway_credentials,
    health,
    ocsp,
    openapi,
    profiles,
    seacat,
    tenants,
    tokens,
)
from chalicelib.api.middleware import register
from chalicelib.jobs import upkeep

app = Chalice(app_name="seacat-pki")
register(app)
app.register_blueprint(health.bp)
app.register_blueprint(tokens.bp)
app.register_blueprint(tenants.bp)
app.register_blueprint(seacat.bp)
app.register_blueprint(profiles.bp)
app.register_blueprint(gateway_credentials.bp)
app.register_blueprint(audit.bp)
app.register_blueprint(est.bp)
app.register_blueprint(est_credentials.bp)
app.register_blueprint(ocsp.bp)
app.register_blueprint(openapi.bp)
app.register_blueprint(console.bp)
app.register_blueprint(upkeep.bp)  # the hourly upkeep: a scheduled function of its own on AWS
