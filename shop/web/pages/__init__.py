"""The web pages (zh-CN), one module per role or area; each calls the same domain
functions as the API and renders a template (`shop/web/render.py`)."""

from shop.web.pages import (
    account,
    admin,
    basket,
    catalog,
    members,
    orders,
    reports,
    supplier,
    users,
)

ROUTES = {
    "public": [account.LoginPages, catalog.CatalogPages],
    "any": [account.HomePage, users.PasswordPages],
    "buyer": [basket.ShopPages, members.MemberPages, members.BudgetPages],
    "reader": [orders.OrderPages],
    "supplier": [supplier.SupplierPages],
    "admin": [admin.AdminPages, users.AdminUserPages],
    "auditor": [reports.ReportPages],
}
