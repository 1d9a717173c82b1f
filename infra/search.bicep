// Azure AI Search for the vector index, and the pipeline identity's roles on it.
//
//   az deployment group create -g <rg> -f infra/search.bicep \
//     -p serviceName=audioemb-search pipelinePrincipalId=<pipelineIdentity principalId> sku=basic
//
// Cost drivers (see the README): the SKU sets price and storage per partition; replicas multiply
// the price and add query throughput and availability (2 for a read SLA, 3 for read/write);
// partitions multiply the price and the vector storage. A 2048-float vector is 8 KB (fp32) per
// file before HNSW overhead; scalar quantization stores ~2 KB, binary ~0.25 KB.

@description('Search service name (globally unique, lower case).')
param serviceName string

param location string = resourceGroup().location

@allowed(['basic', 'standard', 'standard2', 'standard3', 'storage_optimized_l1', 'storage_optimized_l2'])
param sku string = 'basic'

@minValue(1)
@maxValue(12)
param replicaCount int = 1

@allowed([1, 2, 3, 4, 6, 12])
param partitionCount int = 1

@description('principalId of the identity the pipeline runs as (the storage deployment outputs it).')
param pipelinePrincipalId string

@description('Keep admin keys usable (true) or require Entra ID (RBAC) only (false).')
param allowApiKeys bool = true

var searchIndexDataContributor = '8ebe5a00-799e-43f5-93ac-243d3dce84a7'
var searchServiceContributor = '7ca78c08-252a-4471-8644-bb5ff32d4ba0'

resource search 'Microsoft.Search/searchServices@2023-11-01' = {
  name: serviceName
  location: location
  sku: { name: sku }
  properties: {
    replicaCount: replicaCount
    partitionCount: partitionCount
    hostingMode: 'default'
    publicNetworkAccess: 'enabled'
    disableLocalAuth: !allowApiKeys
    authOptions: allowApiKeys ? { aadOrApiKey: { aadAuthFailureMode: 'http401WithBearerChallenge' } } : null
  }
}

// Documents: upload, delete, query.
resource canWriteDocuments 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: search
  name: guid(search.id, pipelinePrincipalId, searchIndexDataContributor)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', searchIndexDataContributor)
    principalId: pipelinePrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Index and alias definitions: create, rebuild, switch.
resource canManageIndexes 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: search
  name: guid(search.id, pipelinePrincipalId, searchServiceContributor)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', searchServiceContributor)
    principalId: pipelinePrincipalId
    principalType: 'ServicePrincipal'
  }
}

output searchEndpoint string = 'https://${search.name}.search.windows.net'
