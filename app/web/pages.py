"""The hosted pages' routes: checkout, voucher and instructions, and their assets.

The server renders the frame of a page and knows nothing of the intent: the client
secret stays in the address's fragment, which browsers never send, and the page's
script calls /graphql with it (resolvers do the checking, as for any client). The one
thing a page needs that GraphQL does not carry is the merchant's name, which
`merchant_name` hands to the holder of the intent's client secret and no one else.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from app.domain.errors import Forbidden, ServiceUnavailable, Unauthenticated
from app.domain.hosted_pages import CHECKOUT_PATH, PAYMENT_LINK_PATH
from app.domain.ids import looks_like_id
from app.services.container import Services
from app.web.i18n import LOCALES, MESSAGES, language_of

HERE = Path(__file__).parent
STATIC_PATH = "/static/checkout"
PAGE_MODES = ("checkout", "voucher", "instructions")
# Scripts and styles from this origin only; the SVG codes arrive as data: images; the
# 3-D Secure step is the PSP's page in a frame; no one may frame the checkout itself.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-src 'self' https:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}

templates = Jinja2Templates(directory=HERE / "templates")


def render(request: Request, template: str, status_code: int = 200, **values: Any) -> Response:
    """A page in the visitor's language (`?lang=en`, else Spanish)."""
    lang = language_of(request.query_params.get("lang"))
    context = {
        "lang": lang,
        "locale": LOCALES[lang],
        "t": MESSAGES[lang],
        "static": STATIC_PATH,
        "other_lang_query": "" if lang == "en" else "?lang=en",
        **values,
    }
    return templates.TemplateResponse(
        request, template, context, status_code=status_code, headers=PAGE_HEADERS
    )


class CheckoutPages:
    def __init__(self, services: Services, *, sandbox: bool) -> None:
        self.services = services
        self.sandbox = sandbox

    def routes(self) -> list[BaseRoute]:
        return [
            Route(CHECKOUT_PATH + "/{intent_id}", self.checkout, methods=["GET"]),
            Route(CHECKOUT_PATH + "/{intent_id}/voucher", self.voucher, methods=["GET"]),
            Route(CHECKOUT_PATH + "/{intent_id}/instructions", self.instructions, methods=["GET"]),
            Route(CHECKOUT_PATH + "/{intent_id}/merchant", self.merchant_name, methods=["GET"]),
            Route(PAYMENT_LINK_PATH + "/{link_id}", self.payment_link, methods=["GET"]),
            Mount(STATIC_PATH, app=StaticFiles(directory=HERE / "static"), name="checkout-static"),
        ]

    async def checkout(self, request: Request) -> Response:
        return self._page(request, "checkout")

    async def voucher(self, request: Request) -> Response:
        return self._page(request, "voucher")

    async def instructions(self, request: Request) -> Response:
        return self._page(request, "instructions")

    def _page(self, request: Request, mode: str) -> Response:
        intent_id = request.path_params["intent_id"]
        if not looks_like_id(intent_id, "pi"):
            return render(request, "not_found.html", 404)
        return render(
            request,
            "checkout.html",
            intent_id=intent_id,
            mode=mode,
            sandbox=self.sandbox,
            messages=MESSAGES[language_of(request.query_params.get("lang"))],
        )

    async def payment_link(self, request: Request) -> Response:
        """A new intent of the link's merchant, and off to its checkout (303: the
        secret rides in the Location's fragment); 410 when the link is off or past
        its expiry, 404 when there is no such link."""
        try:
            visit = await self.services.payment_links.visit(request.path_params["link_id"])
        except ServiceUnavailable:
            return render(request, "not_found.html", 503)
        if visit is None:
            return render(request, "not_found.html", 404)
        if visit.intent is None:
            return render(request, "link_gone.html", 410, merchant_name=visit.merchant_name)
        intent = visit.intent
        page = f"{CHECKOUT_PATH}/{intent.id}"
        if language_of(request.query_params.get("lang")) == "en":
            page += "?lang=en"
        return RedirectResponse(
            f"{page}#{intent.client_secret}", status_code=303, headers={"Cache-Control": "no-store"}
        )

    async def merchant_name(self, request: Request) -> Response:
        """`{"name": ...}` for the holder of this intent's client secret."""
        services = self.services
        try:
            principal = await services.auth.authenticate(request.headers.get("authorization"))
            if principal is None or principal.intent_id != request.path_params["intent_id"]:
                return _refused(401, "send this intent's client secret as a Bearer token")
            name = await services.merchants.name_for_customer(principal)
        except (Unauthenticated, Forbidden) as error:
            return _refused(401, error.message)
        except ServiceUnavailable as error:
            return _refused(503, error.message)
        return JSONResponse({"name": name}, headers={"Cache-Control": "no-store"})


def _refused(status: int, message: str) -> JSONResponse:
    return JSONResponse(
        {"error": message}, status_code=status, headers={"Cache-Control": "no-store"}
    )
