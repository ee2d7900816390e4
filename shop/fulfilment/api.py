"""After payment over HTTP: a branch's addresses and invoice profile (buyer), shipments
(the supplier ships, the buyer receives), their invoices (the supplier uploads, the buyer
accepts or rejects, those who may see the order download) and after-sales requests."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, Request, Response, delete, get, patch, post, put
from litestar.di import NamedDependency
from litestar.params import FromQuery, HeaderParameter, JSONBody

from common.files import PRIVATE, FileStore, body_limit, file_response, multipart_form
from common.pagination import PAGINATION, Paging
from common.schemas import PathId
from shop.auth.guards import require_roles
from shop.auth.scope import branch_of
from shop.fulfilment import addresses, after_sales, invoice_profile, invoices, queries, shipments
from shop.fulfilment.schemas import (
    AddressIn,
    AddressList,
    AddressOut,
    AddressPatch,
    AfterSaleIn,
    AfterSaleList,
    AfterSaleOut,
    InvoiceOut,
    InvoiceProfileIn,
    InvoiceToOut,
    RejectIn,
    ShipIn,
    ShipmentBrief,
    ShipmentList,
    ShipmentOut,
)
from shop.fulfilment.states import AfterSaleStatus, ShipmentStatus

admin_or_supplier = require_roles("admin", "supplier")
Files = NamedDependency[FileStore]  # the app's `file_store`
IfNoneMatch = Annotated[str | None, HeaderParameter(name="If-None-Match", max_length=2000)]
INVOICE_BODY_MAX = body_limit(invoices.MAX_BYTES)
INVOICE_FORM = {  # the upload's text fields, for the OpenAPI schema (`shop/openapi.py`)
    "number": {"type": "string", "pattern": "^[0-9A-Za-z]{8,20}$", "description": "发票号码"},
    "issued_on": {"type": "string", "format": "date", "description": "开票日期, YYYY-MM-DD"},
    "amount_fen": {"type": "string", "pattern": "^[0-9]{1,15}$", "description": "the shipment's amount_fen"},
}


class AddressController(Controller):
    """The buyer's branch's delivery addresses."""

    path = "/api/branch/addresses"

    @get("/")
    async def list(self, request: Request) -> AddressList:
        items = await addresses.list_addresses(branch_of(request))
        return AddressList(items=items, total=len(items))

    @post("/")
    async def create(self, request: Request, data: JSONBody[AddressIn]) -> AddressOut:
        return await addresses.create_address(branch_of(request), data)

    @patch("/{address_id:int}")
    async def update(self, request: Request, address_id: PathId, data: JSONBody[AddressPatch]) -> AddressOut:
        return await addresses.update_address(branch_of(request), address_id, data)

    @delete("/{address_id:int}")
    async def remove(self, request: Request, address_id: PathId) -> None:
        await addresses.delete_address(branch_of(request), address_id)


class InvoiceProfileController(Controller):
    """Whom the branch's invoices are made out to; `null` until it is set."""

    path = "/api/branch/invoice-profile"

    @get("/")
    async def show(self, request: Request) -> InvoiceToOut | None:
        return await invoice_profile.get_profile(branch_of(request))

    @put("/")
    async def set(self, request: Request, data: JSONBody[InvoiceProfileIn]) -> InvoiceToOut:
        return await invoice_profile.put_profile(
            branch_of(request), data, user_id=request.user.id, now=request.app.state.clock()
        )


class SupplierShipmentController(Controller):
    path = "/api/supplier/shipments"
    dependencies = PAGINATION

    @get("/")
    async def list(self, request: Request, page: Paging, status: FromQuery[ShipmentStatus | None] = None) -> ShipmentList:
        """The supplier's shipments, newest first, with the branch, the delivery address and the invoice title."""
        items, total = await queries.list_for_supplier(
            request.user.supplier_id, status=status, limit=page.limit, offset=page.offset
        )
        return ShipmentList(items=items, total=total)

    @post("/{shipment_id:int}/ship", status_code=200)
    async def ship(self, request: Request, shipment_id: PathId, data: JSONBody[ShipIn]) -> ShipmentOut:
        """awaiting_shipment → shipped, with the carrier and the tracking number."""
        await shipments.ship(
            shipment_id, request.user, carrier=data.carrier, tracking_no=data.tracking_no, now=request.app.state.clock()
        )
        return await queries.supplier_shipment(request.user.supplier_id, shipment_id)


    @post(
        "/{shipment_id:int}/invoice",
        request_max_body_size=INVOICE_BODY_MAX,
        opt={"problems": (400, 403, 404, 409), "multipart": ("file",), "form_fields": INVOICE_FORM},
    )
    async def invoice(self, request: Request, shipment_id: PathId, file_store: Files) -> InvoiceOut:
        """`multipart/form-data` with `number`, `issued_on`, `amount_fen` (the shipment's) and `file`
        (a PDF, OFD, PNG or JPEG of at most 5 MB, by its content) → `issued`; the branch is told."""
        async with multipart_form(request, max_bytes=invoices.MAX_BYTES) as form:
            return await invoices.issue(file_store, shipment_id, request.user, form, now=request.app.state.clock())


class ReceiptController(Controller):
    path = "/api/shipments"

    @post("/{shipment_id:int}/receive", status_code=200)
    async def receive(self, request: Request, shipment_id: PathId) -> ShipmentBrief:
        """shipped → received (a buyer of the order's branch); answers the shipment as its order shows it."""
        order_id = await shipments.receive(shipment_id, request.user, now=request.app.state.clock())
        return await queries.shipment_brief(order_id, shipment_id)


class InvoiceDecisionController(Controller):
    """The branch's buyer decides on an `issued` invoice."""

    path = "/api/invoices"

    @post("/{invoice_id:int}/accept", status_code=200)
    async def accept(self, request: Request, invoice_id: PathId) -> InvoiceOut:
        return await invoices.decide(invoice_id, request.user, accept=True, now=request.app.state.clock())

    @post("/{invoice_id:int}/reject", status_code=200)
    async def reject(self, request: Request, invoice_id: PathId, data: JSONBody[RejectIn]) -> InvoiceOut:
        """→ `rejected`, with the reason; the supplier then uploads a new one."""
        return await invoices.decide(invoice_id, request.user, accept=False, reason=data.reason, now=request.app.state.clock())


class InvoiceController(Controller):
    """An invoice and its file, to the shipment's supplier, the branch's buyers, auditors over
    the branch and admins (anyone else: 403)."""

    path = "/api/invoices"

    @get("/{invoice_id:int}")
    async def show(self, request: Request, invoice_id: PathId) -> InvoiceOut:
        return await invoices.get_invoice(invoice_id, request.user)

    @get("/{invoice_id:int}/file", opt={"media_types": tuple(invoices.KINDS)})
    async def file(self, request: Request, invoice_id: PathId, file_store: Files, if_none_match: IfNoneMatch = None) -> Response:
        """The file as uploaded, with its own content type, as an attachment."""
        ref, name = await invoices.file_of(invoice_id, request.user)
        return file_response(file_store, ref, if_none_match=if_none_match, cache_control=PRIVATE, attachment_name=name)


class OrderAfterSaleController(Controller):
    path = "/api/orders"

    @post("/{order_id:int}/after-sales")
    async def open(self, request: Request, order_id: PathId, data: JSONBody[AfterSaleIn]) -> AfterSaleOut:
        """Ask for some of a paid order's lines back, with a reason."""
        return await after_sales.open_request(order_id, request.user, data, now=request.app.state.clock())


class AfterSaleController(Controller):
    path = "/api/after-sales"
    dependencies = PAGINATION

    @get("/")
    async def list(self, request: Request, page: Paging, status: FromQuery[AfterSaleStatus | None] = None) -> AfterSaleList:
        items, total = await after_sales.list_requests(request.user, status=status, limit=page.limit, offset=page.offset)
        return AfterSaleList(items=items, total=total)

    @post("/{sale_id:int}/accept", status_code=200, guards=[admin_or_supplier])
    async def accept(self, request: Request, sale_id: PathId) -> AfterSaleOut:
        """Refund the request's lines as an admin refund would, and close it `refunded`."""
        return await after_sales.accept(
            sale_id, request.user, now=request.app.state.clock(), settings=request.app.state.settings
        )

    @post("/{sale_id:int}/reject", status_code=200, guards=[admin_or_supplier])
    async def reject(self, request: Request, sale_id: PathId, data: JSONBody[RejectIn]) -> AfterSaleOut:
        return await after_sales.reject(sale_id, request.user, data.reason, now=request.app.state.clock())


ROUTES = {
    "buyer": [AddressController, InvoiceProfileController, ReceiptController, InvoiceDecisionController, OrderAfterSaleController],
    "supplier": [SupplierShipmentController],
    "any": [AfterSaleController, InvoiceController],
}
