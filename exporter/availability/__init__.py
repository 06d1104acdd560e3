"""The monthly availability report for IT operations (`dicom-exporter report`).

timeline: samples to up/down/unknown time, pure; figures: the report's
numbers per target, pure; prometheus: the HTTP reads; render: Markdown, HTML
and JSON; monthly: the period and the glue the CLI calls.
"""
