"""tradepipe: an autonomous crypto trading pipeline on Dagster."""

from tradepipe.config.log_redaction import install_log_redaction

install_log_redaction()  # no credential from any URL reaches a log line, whoever logs it
