"""Test doubles for the services embedb talks to (local HTTP servers, no internet)."""
