// azd template for the bridge on Azure Functions Flex Consumption (Linux, Node.js 22). Follows
// Microsoft's Flex Consumption samples (Azure-Samples/azure-functions-flex-consumption-samples,
// IaC/bicep; functions-quickstart-typescript-azd), without registry modules, and with a
// system-assigned identity that reaches storage, Application Insights and Key Vault: no keys in
// app settings. Not compiled or deployed by this repository's CI; see docs/deploy.md.
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('Name of the azd environment; with the subscription and location it makes resource names unique.')
param environmentName string

@minLength(1)
@description('Region for every resource; it must offer Flex Consumption (az functionapp list-flexconsumption-locations).')
@metadata({ azd: { type: 'location' } })
param location string

@secure()
@description('Connection string of an existing Cosmos DB account, as the portal shows it; kept in Key Vault.')
param cosmosConnectionString string

@allowed(['cosmos', 'blob'])
@description('Where file bytes go: managed attachments (cosmos) or this deployment\'s storage account (blob), reached with the app\'s identity.')
param mediaStore string = 'cosmos'

@description('MAX_PART_BYTES: largest file part.')
param maxPartBytes string = '67108864'

@description('MAX_REQUEST_BYTES: largest request body.')
param maxRequestBytes string = '104857600'

@description('FUNCTIONS_REQUEST_BODY_SIZE_LIMIT: the Functions host\'s own cap on a body; keep it at or above MAX_REQUEST_BYTES.')
param requestBodySizeLimit string = '104857600'

@description('More app settings from the README\'s settings table (ALLOWED_TARGETS, AUTH_*, ...), as an object of strings.')
param extraAppSettings object = {}

@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 100

@allowed([512, 2048, 4096])
param instanceMemoryMB int = 2048

@description('Resource group to create or reuse; default rg-<environmentName>.')
param resourceGroupName string = ''

var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = { 'azd-env-name': environmentName }
var functionAppName = 'func-${resourceToken}'
// The container Flex Consumption deploys the package into (named as in Microsoft's samples).
var deploymentContainerName = 'app-package-${take(functionAppName, 32)}-${take(resourceToken, 7)}'

resource rg 'Microsoft.Resources/resourceGroups@2022-09-01' = {
  name: !empty(resourceGroupName) ? resourceGroupName : 'rg-${environmentName}'
  location: location
  tags: tags
}

module monitoring 'core/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    location: location
    tags: tags
    logAnalyticsName: 'log-${resourceToken}'
    applicationInsightsName: 'appi-${resourceToken}'
  }
}

module storage 'core/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    location: location
    tags: tags
    name: 'st${resourceToken}'
    deploymentContainerName: deploymentContainerName
  }
}

module keyVault 'core/keyvault.bicep' = {
  name: 'keyvault'
  scope: rg
  params: {
    location: location
    tags: tags
    name: 'kv-${resourceToken}'
    cosmosConnectionString: cosmosConnectionString
  }
}

// The host's own connections, all through the app's identity (identity-based AzureWebJobsStorage;
// Application Insights with Entra ID, 'Authorization=AAD' meaning the system-assigned identity).
var hostSettings = {
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__blobServiceUri: storage.outputs.blobEndpoint
  AzureWebJobsStorage__queueServiceUri: storage.outputs.queueEndpoint
  AzureWebJobsStorage__tableServiceUri: storage.outputs.tableEndpoint
  APPLICATIONINSIGHTS_CONNECTION_STRING: monitoring.outputs.connectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'Authorization=AAD'
}

module api 'app/function.bicep' = {
  name: 'api'
  scope: rg
  params: {
    location: location
    tags: tags
    name: functionAppName
    planName: 'plan-${resourceToken}'
    storageAccountName: storage.outputs.name
    deploymentContainerName: deploymentContainerName
    hostSettings: hostSettings
    maximumInstanceCount: maximumInstanceCount
    instanceMemoryMB: instanceMemoryMB
  }
}

module rbac 'app/rbac.bicep' = {
  name: 'rbac'
  scope: rg
  params: {
    principalId: api.outputs.principalId
    storageAccountName: storage.outputs.name
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    keyVaultName: keyVault.outputs.name
  }
}

// The bridge's settings go on once the identity holds its roles, so the Key Vault reference and the
// storage connections resolve when the host restarts with them.
module settings 'app/appsettings.bicep' = {
  name: 'appsettings'
  scope: rg
  dependsOn: [rbac]
  params: {
    functionAppName: api.outputs.name
    hostSettings: hostSettings
    blobEndpoint: storage.outputs.blobEndpoint
    cosmosSecretUri: keyVault.outputs.cosmosSecretUri
    mediaStore: mediaStore
    maxPartBytes: maxPartBytes
    maxRequestBytes: maxRequestBytes
    requestBodySizeLimit: requestBodySizeLimit
    extraAppSettings: extraAppSettings
  }
}

output AZURE_LOCATION string = location
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = api.outputs.name
output SERVICE_API_NAME string = api.outputs.name
output SERVICE_API_URI string = 'https://${api.outputs.defaultHostName}'
output AZURE_KEY_VAULT_NAME string = keyVault.outputs.name
output AZURE_STORAGE_ACCOUNT_NAME string = storage.outputs.name
