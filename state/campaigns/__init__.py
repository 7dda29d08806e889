"""Campaigns: the response and uplift models (``response``, ``uplift``), their campaign and
prior-purchase features (``descriptors``, ``prior_features``), their readouts (``qini``,
``balance``, ``abtest``) and the book of exposures waiting for their labels (``campaign_book``)."""
