"""Renderers: turn the engines' result objects into terminal text, JSON and Slack replies."""
