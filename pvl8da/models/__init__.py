"""Networks: the domain-adaptation models (``da``), the FCD models (``fcd``) and weight-file checks (``weights``)."""
