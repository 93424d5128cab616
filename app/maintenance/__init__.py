"""Maintenance windows per connection: from the config file and from the operator API.

``windows`` says when they are open (pure); ``store`` reads every window of a connection
(config and database); ``service`` is what the API and the console call.
"""
