"""The GraphQL Admin API documents the connector sends (API version 2026-01).

Each is written against Shopify's reference (shopify.dev/docs/api/admin-graphql/2026-01/…);
the simulator validates them against the same schema subset, so a field or argument the real
API does not have fails in the tests, not in a merchant's shop.
"""

from __future__ import annotations

# fields of a variant every caller reads (links are REST ids: legacyResourceId)
VARIANT_FIELDS = """
  id legacyResourceId sku title price compareAtPrice
  selectedOptions { name value }
  product { id legacyResourceId handle }
  inventoryItem { id legacyResourceId }
"""

# queries/productVariants: Shopify search syntax, matches loosely (filtered to exact SKUs)
VARIANTS_BY_SKU = """
query VariantsBySku($query: String!, $first: Int!) {
  productVariants(first: $first, query: $query) { nodes { VARIANT } }
}
""".replace("VARIANT", VARIANT_FIELDS)

# queries/productByIdentifier: the product a variant belongs under, by its handle (a direct
# lookup, not the search index, so a product made a moment ago is found)
PRODUCT_BY_HANDLE = """
query ProductByHandle($handle: String!) {
  productByIdentifier(identifier: {handle: $handle}) {
    id legacyResourceId handle title
    options { name optionValues { name } }
    variantsCount { count }
    variants(first: 2) { nodes { id legacyResourceId sku title } }
  }
}
"""

# objects/Product.variants, paged: only when a create met an existing variant
PRODUCT_VARIANTS_PAGE = """
query ProductVariantsPage($id: ID!, $after: String) {
  product(id: $id) {
    variants(first: 250, after: $after) {
      nodes { VARIANT }
      pageInfo { hasNextPage endCursor }
    }
  }
}
""".replace("VARIANT", VARIANT_FIELDS)

# mutations/productSet: synchronous (default since 2024-07), variants up to 2048
PRODUCT_SET = """
mutation ProductSet($identifier: ProductSetIdentifiers, $input: ProductSetInput!) {
  productSet(identifier: $identifier, input: $input, synchronous: true) {
    product {
      id legacyResourceId handle
      variants(first: 2) { nodes { VARIANT } }
    }
    userErrors { field message code }
  }
}
""".replace("VARIANT", VARIANT_FIELDS)

# mutations/productVariantsBulkCreate: strategy DEFAULT removes only a standalone
# "Default Title" variant (never a real first variant)
VARIANTS_BULK_CREATE = """
mutation VariantsBulkCreate($productId: ID!, $variants: [ProductVariantsBulkInput!]!) {
  productVariantsBulkCreate(productId: $productId, variants: $variants, strategy: DEFAULT) {
    productVariants { VARIANT }
    userErrors { field message code }
  }
}
""".replace("VARIANT", VARIANT_FIELDS)

# mutations/productVariantsBulkUpdate: fields of existing variants (prices, SKU, barcode)
VARIANTS_BULK_UPDATE = """
mutation VariantsBulkUpdate($productId: ID!, $variants: [ProductVariantsBulkInput!]!) {
  productVariantsBulkUpdate(productId: $productId, variants: $variants) {
    productVariants { id }
    userErrors { field message code }
  }
}
"""

# mutations/inventoryAdjustQuantities with @idempotent on the mutation field (2026-01;
# required from 2026-04)
ADJUST_AVAILABLE = """
mutation AdjustAvailable($input: InventoryAdjustQuantitiesInput!, $key: String!) {
  inventoryAdjustQuantities(input: $input) @idempotent(key: $key) {
    inventoryAdjustmentGroup {
      id
      changes { name delta quantityAfterChange }
    }
    userErrors { field message code }
  }
}
"""

# queries/inventoryItem → InventoryItem.inventoryLevel(locationId:).quantities(names:)
AVAILABLE_NOW = """
query AvailableNow($item: ID!, $location: ID!) {
  inventoryItem(id: $item) {
    id
    inventoryLevel(locationId: $location) { quantities(names: ["available"]) { name quantity } }
  }
}
"""

# mutations/inventorySetQuantities: compare-and-swap with changeFromQuantity (2026-01),
# @idempotent like the adjustment
SET_AVAILABLE = """
mutation SetAvailable($input: InventorySetQuantitiesInput!, $key: String!) {
  inventorySetQuantities(input: $input) @idempotent(key: $key) {
    inventoryAdjustmentGroup {
      id
      changes { name delta quantityAfterChange }
    }
    userErrors { field message code }
  }
}
"""

# queries/order: what a shipment needs (line items, fulfillments, fulfillment orders)
ORDER_FOR_FULFILLMENT = """
query OrderForFulfillment($id: ID!) {
  order(id: $id) {
    id name
    lineItems(first: 250) { nodes { id sku quantity } }
    fulfillments(first: 250) {
      id legacyResourceId status
      trackingInfo(first: 10) { company number url }
    }
    fulfillmentOrders(first: 50) {
      nodes {
        id status
        lineItems(first: 250) { nodes { id remainingQuantity lineItem { id sku } } }
      }
    }
  }
}
"""

# mutations/fulfillmentCreate (FulfillmentInput: lineItemsByFulfillmentOrder, trackingInfo,
# notifyCustomer); no @idempotent: a retry finds the package by its tracking number
FULFILLMENT_CREATE = """
mutation FulfillmentCreate($fulfillment: FulfillmentInput!) {
  fulfillmentCreate(fulfillment: $fulfillment) {
    fulfillment { id legacyResourceId status trackingInfo(first: 10) { number } }
    userErrors { field message }
  }
}
"""

# mutations/fulfillmentTrackingInfoUpdate
TRACKING_UPDATE = """
mutation TrackingUpdate($id: ID!, $info: FulfillmentTrackingInput!, $notify: Boolean) {
  fulfillmentTrackingInfoUpdate(
    fulfillmentId: $id, trackingInfoInput: $info, notifyCustomer: $notify
  ) {
    fulfillment { id }
    userErrors { field message }
  }
}
"""

# queries/order: what a refund needs (currency, lines, earlier refunds, payments)
ORDER_FOR_REFUND = """
query OrderForRefund($id: ID!) {
  order(id: $id) {
    id name currencyCode
    lineItems(first: 250) { nodes { id sku quantity } }
    refunds(first: 250) {
      id legacyResourceId note
      totalRefundedSet { shopMoney { amount currencyCode } }
    }
    transactions(first: 100) {
      id kind status gateway
      maximumRefundableV2 { amount currencyCode }
    }
  }
}
"""

# mutations/refundCreate with @idempotent (2026-01; required from 2026-04)
REFUND_CREATE = """
mutation RefundCreate($input: RefundInput!, $key: String!) {
  refundCreate(input: $input) @idempotent(key: $key) {
    refund { id legacyResourceId totalRefundedSet { shopMoney { amount currencyCode } } }
    userErrors { field message }
  }
}
"""
