"""``python -m journeys.testing.fake_providers --config JSON``: serve until stdin closes."""

from journeys.testing.fake_providers.process import main

main()
