// A Key Vault (Azure RBAC, no access policies) holding the Cosmos DB connection string, which the
// app setting COSMOS_CONNECTION_STRING references.
param location string
param tags object = {}
param name string

@secure()
param cosmosConnectionString string

resource keyVault 'Microsoft.KeyVault/vaults@2022-07-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
  }
}

resource cosmosSecret 'Microsoft.KeyVault/vaults/secrets@2022-07-01' = {
  parent: keyVault
  name: 'cosmos-connection-string'
  properties: {
    value: cosmosConnectionString
  }
}

output name string = keyVault.name
// Without a version, so the app picks up a rotated secret.
output cosmosSecretUri string = cosmosSecret.properties.secretUri
