"""The core's ports: connectors state what they offer through interfaces."""
from __future__ import annotations

from twisted.internet import task
from zope.interface.verify import verifyObject

from billing.ledger import EmbeddedLedger
from core.interfaces import IBillingPort, IInTransactionCredit


def test_ledger_in_transaction_provides_in_transaction_credit():
    ledger = EmbeddedLedger(object(), clock=task.Clock(), in_transaction=True)
    assert verifyObject(IBillingPort, ledger)
    assert verifyObject(IInTransactionCredit, ledger)


def test_ledger_apart_is_a_plain_billing_port():
    ledger = EmbeddedLedger(object(), clock=task.Clock(), in_transaction=False)
    assert verifyObject(IBillingPort, ledger)
    assert not IInTransactionCredit.providedBy(ledger)


def test_core_billing_still_exports_the_port():
    import core.billing
    assert core.billing.IBillingPort is IBillingPort


def test_transaction_queries_provides_its_interface():
    from core.interfaces import ITransactionQueries
    from core.queries import TransactionQueries
    assert verifyObject(ITransactionQueries, TransactionQueries(object()))


def test_activation_service_declares_its_interface():
    from zope.interface.verify import verifyClass

    from core.activation import ActivationService
    from core.interfaces import IActivationService
    assert verifyClass(IActivationService, ActivationService)
