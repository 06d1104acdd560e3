"""The monitoring config shared by the alert and dashboard builders."""
