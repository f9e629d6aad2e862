"""Result texts the text channels share (SMS, Web/WAP): English and Serbian.

Each channel adds its own SUCCESS wording and extra keys, and configuration
overrides any of them.
"""

RESULT_TEXTS = {
    "en": {
        "SYSTEM_ERROR": "Sorry, the recharge failed. Please try again later.",
        "SUBSCRIBER_UNKNOWN": "Your number is not known to the recharge service.",
        "SUBSCRIBER_BARRED": "Too many failed attempts. You can try again after {unbar_time}.",
        "VOUCHER_ALREADY_USED_BY_YOU": "You have already used this voucher.",
        "VOUCHER_USED_BY_OTHER": "This voucher has already been used.",
        "VOUCHER_NOT_AVAILABLE": "This voucher is not yet available.",
        "VOUCHER_EXPIRED": "This voucher has expired.",
        "VOUCHER_BLOCKED": "This voucher is blocked. Please contact customer care.",
        "VOUCHER_PENDING": "This voucher is being processed, please wait.",
        "BILLING_REJECTED": "The recharge was not accepted.",
        "INVALID_HRN": "Invalid voucher number. Please check it and try again.",
        "INVALID_MSISDN": "Invalid phone number.",
        "BILLING_UNAVAILABLE": "The recharge service is busy, please try again later.",
        "DATABASE_UNAVAILABLE": "The recharge service is busy, please try again later.",
        "SOURCE_THROTTLED": "Too many failed recharge attempts here. Please try again in a minute.",
    },
    "sr": {
        "SYSTEM_ERROR": "Dopuna nije uspela. Pokušajte kasnije.",
        "SUBSCRIBER_UNKNOWN": "Vaš broj nije poznat servisu za dopunu.",
        "SUBSCRIBER_BARRED": "Previše neuspelih pokušaja. Pokušajte ponovo posle {unbar_time}.",
        "VOUCHER_ALREADY_USED_BY_YOU": "Već ste iskoristili ovaj vaučer.",
        "VOUCHER_USED_BY_OTHER": "Ovaj vaučer je već iskorišćen.",
        "VOUCHER_NOT_AVAILABLE": "Ovaj vaučer još nije dostupan.",
        "VOUCHER_EXPIRED": "Ovaj vaučer je istekao.",
        "VOUCHER_BLOCKED": "Ovaj vaučer je blokiran. Obratite se korisničkoj podršci.",
        "VOUCHER_PENDING": "Vaučer se obrađuje, sačekajte.",
        "BILLING_REJECTED": "Dopuna nije prihvaćena.",
        "INVALID_HRN": "Neispravan broj vaučera. Proverite ga i pokušajte ponovo.",
        "INVALID_MSISDN": "Neispravan broj telefona.",
        "BILLING_UNAVAILABLE": "Servis za dopunu je zauzet, pokušajte kasnije.",
        "DATABASE_UNAVAILABLE": "Servis za dopunu je zauzet, pokušajte kasnije.",
        "SOURCE_THROTTLED": "Previše neuspelih pokušaja dopune. Pokušajte ponovo za minut.",
    },
}
