"""`xenaudit logscan`: memory events in kernel log files, without a whole audit."""
