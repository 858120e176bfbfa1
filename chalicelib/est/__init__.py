"""EST (RFC 7030): the wire format in ``wire``; the routes in chalicelib/api/est.py call the use cases."""
