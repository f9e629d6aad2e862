"""The C{twist ivoms} plugin: the same service tree as C{ivoms run}."""
from twisted.application.service import IServiceMaker
from twisted.plugin import IPlugin
from twisted.python import usage
from zope.interface import implementer


class Options(usage.Options):
    optParameters = [["config", "c", None, "configuration file (default: conf/ivoms.toml or $IVOMS_CONFIG)"]]


@implementer(IServiceMaker, IPlugin)
class IvomsServiceMaker:
    tapname = "ivoms"
    description = "iVOMS - iVoucher management system node"
    options = Options

    def makeService(self, options):
        from twisted.internet import reactor

        from gateway.config import load_config
        from gateway.service import make_service
        return make_service(load_config(options["config"]), reactor)


serviceMaker = IvomsServiceMaker()
