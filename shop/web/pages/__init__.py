"""The web pages (zh-CN), one module per role or area; each calls the same domain
functions as the API and renders a template (`shop/web/render.py`)."""

from shop.web.pages import (
    account,
    admin,
    after_sales,
    basket,
    branch,
    catalog,
    member_view,
    members,
    notifications,
    orders,
    reports,
    shipments,
    supplier,
    users,
)

ROUTES = {
    "public": [account.LoginPages, catalog.CatalogPages, member_view.MemberViewPages],
    "any": [account.HomePage, users.PasswordPages, notifications.NotificationPages, after_sales.AfterSalePages],
    "buyer": [basket.ShopPages, members.MemberPages, members.BudgetPages, branch.BranchPages, shipments.ReceiptPages, member_view.ReceiptSheetPages],
    "reader": [orders.OrderPages],
    "supplier": [supplier.SupplierPages, shipments.SupplierShipmentPages],
    "admin": [admin.AdminPages, users.AdminUserPages],
    "auditor": [reports.ReportPages],
}
