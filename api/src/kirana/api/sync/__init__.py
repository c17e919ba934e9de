"""Offline sync for the mobile app: pull changes since a cursor, push offline mutations."""
