Feature: A party denying custody of a person others saw in its hands
  As a case worker of a humanitarian organisation,
  I want a party's denial that it holds a person kept as that party's claim, beside the evidence that it does,
  so that the person is not quietly dropped from the list of the held, and we can press for acknowledgement.

  Scenario: A party denies holding a person the ICRC visited in its custody, and later acknowledges it
    Given the case worker has opened a case for the prisoner of war "Aram Testyan", a national of AM
    And the case worker has recorded that the ICRC visited the person held by AZ at "Baku" on 2021-02-10
    When the case worker records that AZ denied holding the person on 2021-03-01
    Then the register answers 201
    And the person is held by AZ at "Baku"
    And the case is disputed about custody
    And in the dispute about custody, the ICRC says "held by AZ"
    And in the dispute about custody, AZ says "AZ denies holding the person"

    When the case worker records that AZ acknowledged holding the person on 2021-06-15
    Then the register answers 201
    And the case is not disputed
    And the person is held by AZ at "Baku"
    And the person was last seen alive on 2021-02-10
