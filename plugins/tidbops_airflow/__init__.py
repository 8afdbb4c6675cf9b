"""tidbops_airflow: thin Airflow glue (hooks, operators, sensors, triggers, notifiers) over the tidbops core."""
