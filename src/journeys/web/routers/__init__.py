"""The web app's routers, one per concern (health, survey, unsubscribe, webhooks, intake,
staff); :func:`journeys.web.app.create_app` includes them all."""
